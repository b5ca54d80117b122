"""Output objects answered from listings of their folders (etm.s3.FolderListings), on a
real S3 HTTP endpoint (moto on loopback)."""

from etm.s3 import FolderListings

FOLDER = "out/run/tiles/r50.0_tile6/etasw/2020"


def put(server, key: str, body: bytes = b"cog") -> None:
    server.client().put_object(Bucket="out", Key=key.removeprefix("out/"), Body=body)


def test_a_finished_containers_outputs_are_answered_by_one_listing(s3_out):
    paths = [
        f"{FOLDER}/etasw_2020{m:02d}.{suffix}"
        for m in range(1, 13)
        for suffix in "tif json".split()
    ]
    for path in paths:
        put(s3_out, path)
    put(s3_out, f"{FOLDER}/sub/other.tif")
    s3_out.reset_count()
    folders = FolderListings()
    for path in paths:
        folder = folders.lookup(path)
        assert folder.objects[path].size == 3
    assert folders.lookup(f"{FOLDER}/sub").subfolders == {f"{FOLDER}/sub"}
    assert s3_out.count() == {"LIST": 1}


def test_an_object_the_listing_lacks_is_looked_for_again_and_a_folder_written_is_listed_again(
    s3_out,
):
    folders = FolderListings()
    first, later = f"{FOLDER}/etasw_202001.tif", f"{FOLDER}/etasw_202002.tif"
    put(s3_out, first)
    assert later not in folders.lookup(later).objects  # not yet written
    put(s3_out, later)
    assert later in folders.lookup(later).objects  # listed again: now it is there
    s3_out.reset_count()
    assert folders.lookup(first).objects[first].size == 3
    assert s3_out.count() == {}  # the listing answers for what it holds
    put(s3_out, first, b"rewritten")
    folders.forget(first)  # this process wrote (or removed) in the folder
    assert folders.lookup(first).objects[first].size == len(b"rewritten")


def test_a_folder_of_more_than_a_page_or_one_s3_refuses_to_list_is_left_to_requests(s3_out):
    crowded = "out/run/logs"
    client = s3_out.client()
    for n in range(1001):
        client.put_object(Bucket="out", Key=f"run/logs/{n}.log", Body=b"")
    folders = FolderListings()
    assert folders.lookup(f"{crowded}/1.log") is None
    s3_out.reset_count()
    assert folders.lookup(f"{crowded}/2.log") is None
    assert s3_out.count() == {}  # not listed again
    assert folders.lookup("no-such-bucket/run/x.tif") is None
