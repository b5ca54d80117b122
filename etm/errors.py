"""One exception family: every error a user can cause, with a message that says what to do,
and the one way its lines reach the terminal (:func:`say`)."""

import contextlib
import logging
import re
import sys
from collections.abc import Callable, Iterable
from urllib.parse import quote

from etm.urls import SCHEME, masked_url, split_userinfo

#: A URL in a text: from its scheme to the next whitespace. A scheme starts where no
#: scheme character precedes it: each run of them is then tried once, not from each of its
#: characters (300,000 letters took 47 s).
_URL = re.compile(r"(?<![A-Za-z0-9+.-])" + SCHEME.pattern + r"\S*")
#: A user and password written without a scheme (``user:pass@host``, ``//user:pass@host``):
#: from the start, a space, a quote or a slash to the last ``@`` before the next space.
_USERINFO = re.compile(r"(?<![^\s'\"(=/])[^\s/@:'\"]+:(?!//)[^\s'\"]*@")
#: What a user and password without a scheme cannot span: whitespace and quotes.
_WORD = re.compile(r"[^\s'\"]+")
#: A query parameter, its name and ``=``, then its value to the next ``&``, ``#``, quote or
#: whitespace; its value is a secret when its name says so (``?token=``,
#: ``X-Amz-Signature=``, ``x-amz-security-token=``). Two patterns, so that a long name is
#: read once, not once per word in it.
_QUERY_PARAM = re.compile(r"([?&][^=&#?\s'\"]*=)[^&#\s'\"]+")
_SECRET_NAME = re.compile(r"(?i)token|signature|secret|passw|pwd|credential|auth|sig|key")
#: Users and passwords of the URLs this process was given (:func:`hide`), as written and
#: percent-encoded: said as ``***`` wherever a message quotes them.
_HIDDEN: set[str] = set()


def one_line(error: BaseException) -> str:
    """An exception's message on one line: GDAL's, botocore's and YAML's can span several."""
    return " ".join(str(error).split())


def without_passwords(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``
    (:func:`etm.urls.masked_url`): an endpoint URL can carry them, and botocore quotes the
    endpoint in its errors. A URL runs from its scheme to the next whitespace; one written
    without a scheme loses what lies before its last ``@``, if a ``:`` is in it; the value
    of a query parameter named for a secret (``?token=``, ``X-Amz-Signature=``) is hidden,
    and so are the users and passwords given to :func:`hide`, wherever they are."""
    for secret in sorted(_HIDDEN, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _QUERY_PARAM.sub(
        lambda found: f"{found[1]}***" if _SECRET_NAME.search(found[1]) else found[0], text
    )
    return _WORD.sub(_without_userinfo, _URL.sub(lambda url: masked_url(url[0]), text))


def _without_userinfo(word: re.Match) -> str:
    """A word with a user and password written without a scheme masked: the search stops
    at its last ``@``, so that it is linear in the word's length."""
    text = word[0]
    if "@" not in text:
        return text
    end = text.rindex("@") + 1
    return _USERINFO.sub("***@", text[:end]) + text[end:]


def hide(url: str) -> None:
    """Say ``url``'s user and password as ``***`` in every line from now on, wherever a
    message quotes them: a URL holding whitespace cannot be told from the text around it."""
    head, userinfo, _ = split_userinfo(url)
    if userinfo and head:
        # A parser quotes what it took for the host: the part before a / ? or # in it.
        pieces = {userinfo, quote(userinfo, safe=":"), re.split(r"[/?#]", userinfo)[0]}
        _HIDDEN.update(p for p in pieces if ":" in p or len(p) >= 8)  # never a plain word


#: Snakemake's logger. Its terminal handler writes a message, then its newline: between the
#: two, a line from a job's thread would be glued to Snakemake's line ("Select jobs to
#: execute...etm error: chip ...").
_SNAKEMAKE_LOG = logging.getLogger("snakemake.logging")


#: A line break or other control character a name may hold (a folder named "x\netm: ok"),
#: and the invisible and bidirectional ones (U+202E turns the rest of a line around).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def escaped(line: str) -> str:
    """A line with its control characters escaped, as Python writes them (``\\n``)."""
    return _CONTROL.sub(lambda found: repr(found[0])[1:-1], line)


#: The longest line :func:`say` writes: the middle of a longer one (a value quoted from a
#: config, a listing) is left out, and how much is said.
MAX_LINE = 2000


def shortened(line: str) -> str:
    """A line of at most about :data:`MAX_LINE` characters: its start and end, and how
    many characters between them are left out."""
    if len(line) <= MAX_LINE:
        return line
    kept = MAX_LINE // 2
    return f"{line[:kept]}...[{len(line) - 2 * kept:,} characters left out]...{line[-kept:]}"


def say(lines: Iterable[str], prefix: str = "etm: ") -> None:
    """Lines on stderr, each whole and at the start of a line, never with a password, and
    none longer than about :data:`MAX_LINE` characters.

    In a Snakemake process, written while holding the locks of Snakemake's log handlers:
    each holds its own for the whole of a message and its newline.

    Parameters
    ----------
    lines : iterable of str
        Some quote errors of boto3, whose URLs may hold a password.
    prefix : str
        ``etm: ``, ``etm warning: `` or ``etm error: ``.
    """
    text = "".join(f"{prefix}{shortened(escaped(without_passwords(line)))}\n" for line in lines)
    with contextlib.ExitStack() as held:
        for handler in _SNAKEMAKE_LOG.handlers:
            handler.acquire()
            held.callback(handler.release)
        sys.stderr.write(text)
        sys.stderr.flush()


#: What an interrupt (Ctrl-C) before any job says; the exit status is a shell's for SIGINT.
INTERRUPTED, INTERRUPTED_STATUS = "interrupted (Ctrl-C) before any job ran; nothing changed", 130


def or_exit(step: Callable, *arguments, **options):
    """Run a step of the workflow's setup; an etm error becomes one line and exit status 1,
    an interrupt one line and status 130."""
    try:
        return step(*arguments, **options)
    except EtmError as error:
        say([str(error)], prefix="etm error: ")
        sys.exit(1)
    except KeyboardInterrupt:
        say([INTERRUPTED], prefix="etm: ")
        sys.exit(INTERRUPTED_STATUS)


class EtmError(Exception):
    """Base class of every error etm reports to a user as one line (one per chip when it
    names several), never with a password in it."""

    def __str__(self) -> str:
        return without_passwords(super().__str__())


class ConfigError(EtmError):
    """The workflow configuration is invalid (unknown key, wrong type, inconsistent values)."""


class TileGridError(ConfigError):
    """A tile's square of the tile grid cannot be learned from the chips found: the config
    must give it (``tile_grid.origin``, or the tile's ``bounds``)."""


class ChipError(EtmError):
    """A chip file is unusable; the message starts with its path.

    Parameters
    ----------
    path : str
        The chip's path, as the configuration spells its prefix.
    problem : str
        What is wrong with it and what to do next.
    """

    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"chip {path}: {problem}")


class ChipNameError(ChipError):
    """A chip folder's name or position is not on the model's chip grid."""


class ChipReadError(ChipError):
    """A chip cannot be opened or read in full (truncated or corrupt upload)."""


class ChipContentError(ChipError):
    """A chip's header or values are not those of the chip its name says."""


class ChipTimeError(ChipError):
    """A local chip's modification time is ahead of this machine's clock."""


class ChipChangedError(ChipError):
    """A chip was rewritten while its month was built, or since the run listed it."""


class SuspectChipError(ChipError):
    """A chip's values are implausible, and suspect chips block their month."""


class ChipNeighbourError(ChipError):
    """Chips of a tile-month disagree with their neighbours on the pixels they share.

    Its message has one line per refused chip (``chip <path>: <problem>``); ``path`` and
    ``problem`` are the first one's.

    Parameters
    ----------
    refused : dict
        Each refused chip's path to what is wrong with it and what to do next.
    """

    def __init__(self, refused: dict[str, str]):
        self.refused = dict(refused)
        (self.path, self.problem), *_ = self.refused.items()
        EtmError.__init__(
            self, "\n".join(f"chip {path}: {problem}" for path, problem in self.refused.items())
        )


class OverlapsError(EtmError):
    """Most overlaps of a tile-month's chips disagree: the archive's, not one chip's."""


class EmptyMosaicError(EtmError):
    """Every chip of a tile-month is all NaN: there is nothing to publish."""


class ChipGridError(ChipError):
    """A chip's CRS, pixel size or pixel lattice differs from its neighbours'."""


class MissingChipsError(EtmError):
    """Expected chips are absent, and the configuration says that is an error."""


class RerunError(EtmError):
    """The model's rerun command for a missing chip failed."""


class StorageError(EtmError):
    """The storage (S3) failed to answer, after the clients' retries."""


class OutputError(EtmError):
    """An output folder cannot be written: not writable, or a file where a folder must be."""


class ObjectRefusedError(StorageError):
    """S3 answered that an object is gone (404) or not for this role (403): that object's
    problem, not the storage's."""


class LedgerError(EtmError):
    """The provenance ledger beside the COGs is not one etm wrote, or too large to read."""


class PublishError(EtmError):
    """A written COG failed validation and was not published."""
