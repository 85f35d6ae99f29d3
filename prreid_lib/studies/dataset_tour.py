"""Chapter 1's tour of the data: its splits, near-duplicate groups, part boxes and files.

Each function is one step of the chapter: the chapter calls it and shows what it
returns. The statistics of the splits and of the near-duplicate groups come from
``prreid_lib.datasets.stats`` (re-exported here: the chapter names them);
the pretraining split from :func:`prreid_lib.pretrain.pretrain_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from prreid_lib.config import Profile, get_profile
from prreid_lib.datasets import VehicleID, VeRi776
from prreid_lib.datasets.stats import near_duplicate_groups, near_duplicate_share, split_statistics
from prreid_lib.synthveh_files import IDENTITIES_FILE

__all__ = [
    "COUNT_GLUES",
    "NearDuplicateSummary",
    "combination_sentence",
    "count_glues",
    "example_images",
    "file_heads",
    "hidden_lights_per_camera",
    "hidden_lights_sentence",
    "light_visible_share",
    "near_duplicate_groups",
    "near_duplicate_share",
    "near_duplicate_summary",
    "near_duplicate_target",
    "one_image_per_camera",
    "part_visibility",
    "pretraining_images",
    "pretraining_summary",
    "relative_paths",
    "split_statistics",
    "synthveh_part_boxes",
    "tour_splits",
    "with_views",
]

COUNT_GLUES: dict[str, tuple[str, str]] = {
    "ch01_veri_train_ids": ("VeRi-776 train", "identities"),
    "ch01_veri_train_images": ("VeRi-776 train", "images"),
    "ch01_veri_cameras": ("VeRi-776 gallery", "cameras"),
    "ch01_vid_train_ids": ("VehicleID train", "identities"),
    "ch01_vid_train_images": ("VehicleID train", "images"),
}
"""The counts chapter 1 quotes in its text: glue key -> (split, column) of the statistics."""
NOT_AVAILABLE = "n/a"
"""What the chapter shows for a number the data cannot give."""
HEAD_WIDTH = 110
"""Characters of a file's line that :func:`file_heads` shows."""


def synthveh_part_boxes(veri: VeRi776, vid: VehicleID) -> dict[str, pd.DataFrame]:
    """SynthVeh's ground-truth part boxes of both layouts, by layout name
    (``"VeRi-776"``, ``"VehicleID"``)."""
    from prreid_lib.synthveh import load_synthveh_parts

    return {
        name: load_synthveh_parts(ds.root) for name, ds in (("VeRi-776", veri), ("VehicleID", vid))
    }


def with_views(
    veri: VeRi776 | None, vid: VehicleID | None, parts: dict[str, pd.DataFrame]
) -> tuple[VeRi776 | None, VehicleID | None]:
    """``(veri, vid)`` whose splits carry each image's SynthVeh ``view`` (front or rear)
    from the part boxes ``parts`` (:func:`synthveh_part_boxes`); unchanged when
    ``parts`` is empty (real data)."""
    if not parts:
        return veri, vid
    views = pd.concat(parts.values()).drop_duplicates("path").set_index("path")["view"]

    def viewed(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(view=frame["path"].map(views))

    if veri is not None:
        veri = replace(
            veri, train=viewed(veri.train), query=viewed(veri.query), gallery=viewed(veri.gallery)
        )
    if vid is not None:
        vid = replace(vid, train=viewed(vid.train), test=viewed(vid.test))
    return veri, vid


def tour_splits(veri: VeRi776 | None, vid: VehicleID | None) -> dict[str, pd.DataFrame]:
    """The splits chapter 1 counts, by name (``"VeRi-776 train"``, ...), of the data sets
    the folder has."""
    splits: dict[str, pd.DataFrame] = {}
    if veri is not None:
        splits |= {
            "VeRi-776 train": veri.train,
            "VeRi-776 query": veri.query,
            "VeRi-776 gallery": veri.gallery,
        }
    if vid is not None:
        splits |= {"VehicleID train": vid.train, "VehicleID test (small)": vid.test}
    return splits


def count_glues(stats: pd.DataFrame) -> dict[str, int | str]:
    """The counts of :data:`COUNT_GLUES` from :func:`split_statistics`'s table, by glue
    key; ``"n/a"`` for a split the data lacks or a count it does not record."""
    out: dict[str, int | str] = {}
    for key, (split, column) in COUNT_GLUES.items():
        known = split in stats.index and column in stats.columns
        value = stats.loc[split, column] if known else None
        out[key] = NOT_AVAILABLE if value is None or pd.isna(value) else int(value)
    return out


@dataclass(frozen=True)
class NearDuplicateSummary:
    """The near-duplicate groups of the VehicleID training identities (chapter 1)."""

    groups: pd.DataFrame | None
    """:func:`near_duplicate_groups` of the identities, ``None`` without attributes."""
    identities: pd.DataFrame | None
    """One row per training identity with the keys grouped on (and SynthVeh's ``group``)."""

    @property
    def share(self) -> float:
        """Share of identities with at least one near-duplicate (:func:`near_duplicate_share`)."""
        return near_duplicate_share(self._groups())

    @property
    def n_shared(self) -> int:
        """Groups of two identities or more."""
        return int((self._groups()["group_size"] >= 2).sum())

    @property
    def n_alone(self) -> int:
        """Identities that share their keys with no other."""
        return int((self._groups()["group_size"] == 1).sum())

    def glues(self) -> dict[str, float | int | str]:
        """The values chapter 1 glues, by key; ``"n/a"`` each without groups."""
        keys = ("ch01_near_dup_share", "ch01_n_groups", "ch01_n_dup_groups", "ch01_n_alone")
        if self.groups is None:
            return dict.fromkeys(keys, NOT_AVAILABLE)
        values = (self.share, len(self.groups), self.n_shared, self.n_alone)
        return dict(zip(keys, values, strict=True))

    def sentence(self) -> str:
        """The groups in one sentence, or why there are none."""
        if self.groups is None:
            return "no make/model/colour attributes: near-duplicate groups cannot be formed"
        return (
            f"{self.n_shared} near-duplicate groups of two or more identities; {self.n_alone} "
            f"identities have no near-duplicate; {self.share:.0%} of identities have at least one"
        )

    def _groups(self) -> pd.DataFrame:
        if self.groups is None:
            raise ValueError("no near-duplicate groups: the identities have no attributes")
        return self.groups


def near_duplicate_summary(vid: VehicleID | None, synthetic: bool) -> NearDuplicateSummary:
    """The near-duplicate groups of ``vid``'s training identities: by make, model and
    colour on SynthVeh (its identity table), by model and colour ids on real VehicleID
    where annotated; no groups without those attributes."""
    if synthetic and vid is not None:
        identities = pd.read_csv(vid.root / IDENTITIES_FILE)
        identities = identities[identities["pid"].isin(vid.train["pid"])]
        keys: tuple[str, ...] = ("make", "model", "colour")
    elif vid is not None and vid.train["model_id"].notna().any():
        identities = vid.train.drop_duplicates("pid")
        keys = ("model_id", "colour_id")
    else:
        return NearDuplicateSummary(None, None)
    return NearDuplicateSummary(near_duplicate_groups(identities, keys=keys), identities)


def example_images(vid: VehicleID, summary: NearDuplicateSummary) -> pd.DataFrame:
    """``vid``'s training images, with their near-duplicate ``group`` when the identity
    table has one (SynthVeh), for :func:`prreid_lib.viz.data.identity_examples`."""
    ids = summary.identities
    if ids is None or "group" not in ids.columns:
        return vid.train
    return vid.train.merge(ids[["pid", "group"]], on="pid")


def one_image_per_camera(train: pd.DataFrame) -> pd.DataFrame:
    """One image of the first training vehicle from each camera that saw it, by camera."""
    first = train["pid"].iloc[0]
    one = train[train["pid"] == first]
    return one.drop_duplicates("camid").sort_values("camid")


def part_visibility(parts: pd.DataFrame) -> pd.DataFrame:
    """Per part and view: the share of boxes visible, their mean area relative to the
    image and their number (the whole-vehicle box left out)."""
    p = _with_relative_area(parts)
    return p.groupby(["part", "view"]).agg(
        visible=("visible", "mean"), rel_area=("rel_area", "mean"), boxes=("visible", "size")
    )


def light_visible_share(parts: pd.DataFrame) -> float:
    """Share of the light boxes that are visible."""
    return float(parts.loc[parts["part"] == "light", "visible"].mean())


def hidden_lights_per_camera(parts: pd.DataFrame) -> pd.Series:
    """Per VeRi-776 camera (from the image names ``VVVV_cCCC_...``), the share of its light
    boxes that are hidden."""
    lights = parts[parts["part"] == "light"]
    camera = lights["path"].map(lambda p: int(Path(p).name.split("_")[1][1:]))
    hidden = 1 - lights.groupby(camera)["visible"].mean()
    return hidden.rename_axis("camera").rename("share of light boxes hidden")


def hidden_lights_sentence(parts: pd.DataFrame) -> str:
    """Which camera hides the lights most often (:func:`hidden_lights_per_camera`), against
    the share hidden over all cameras; cameras that tie (at three decimals) are named together."""
    hidden = hidden_lights_per_camera(parts).round(3)
    top = hidden[hidden == hidden.max()].index.tolist()
    overall = 1 - light_visible_share(parts)
    names = [str(c) for c in top]
    who = (
        f"camera {names[0]}"
        if len(top) == 1
        else f"cameras {', '.join(names[:-1])} and {names[-1]}"
    )
    verb = "hides" if len(top) == 1 else "each hide"
    return (
        f"{who[0].upper()}{who[1:]} {verb} the lights most often: {hidden.max():.3f} of "
        f"{'its' if len(top) == 1 else 'their'} light boxes are hidden, against {overall:.3f} "
        "over all cameras."
    )


def _vehicleid_combinations(profile: Profile) -> tuple[int, int]:
    synth = profile.synth
    return synth.n_makes * synth.models_per_make * synth.n_colours, synth.vehicleid_train_ids


def combination_sentence(profile: str | Profile, other: str = "paper") -> str:
    """How many VehicleID training identities share each make-model-colour combination, on
    average, in SynthVeh of ``profile`` and of the ``other`` profile (from their settings:
    the number of combinations and of identities)."""
    here = get_profile(profile) if isinstance(profile, str) else profile
    combos, ids = _vehicleid_combinations(here)
    text = (
        f"The {here.name} profile spreads {ids:,} VehicleID training identities over {combos} "
        f"make-model-colour combinations, {ids / combos:.1f} per combination"
    )
    if other == here.name:
        return text + "."
    their_combos, their_ids = _vehicleid_combinations(get_profile(other))
    ratio = (their_ids / their_combos) / (ids / combos)
    return (
        f"{text}; the {other} profile spreads {their_ids:,} over {their_combos}, "
        f"{their_ids / their_combos:.1f} per combination ({ratio:.1f} times as many)."
    )


def near_duplicate_target(profile: str | Profile) -> float:
    """The share of each split's identities SynthVeh of ``profile`` puts into near-duplicate
    groups at least (``SynthConfig.near_duplicate_share``)."""
    cfg = get_profile(profile) if isinstance(profile, str) else profile
    return float(cfg.synth.near_duplicate_share)


def _with_relative_area(parts: pd.DataFrame) -> pd.DataFrame:
    p = parts[parts["part"] != "vehicle"]
    return p.assign(rel_area=lambda d: (d.x2 - d.x1) * (d.y2 - d.y1) / (d.img_w * d.img_h))


def file_heads(veri: VeRi776 | None, vid: VehicleID | None, root: str | Path) -> str:
    """The first lines of each official list file of the data sets, each file headed by
    its path relative to ``root`` (``train_label.xml`` decoded as gb2312)."""
    files: list[tuple[Path, int, str]] = []
    if veri is not None:
        names = ("name_train.txt", "gt_index.txt", "jk_index.txt", "test_track.txt")
        files += [(veri.root / n, 3, "utf-8") for n in names if (veri.root / n).exists()]
        files.append((veri.root / "train_label.xml", 4, "gb2312"))
    if vid is not None:
        split = vid.root / "train_test_split"
        files += [(split / "train_list.txt", 3, "utf-8"), (split / "test_list_800.txt", 3, "utf-8")]
        attrs = [vid.root / "attribute" / n for n in ("model_attr.txt", "color_attr.txt")]
        files += [(a, 3, "utf-8") for a in attrs if a.exists()]
    return "\n".join(_head(path, root, n, encoding) for path, n, encoding in files)


def _head(path: Path, root: str | Path, n: int, encoding: str) -> str:
    lines = path.read_bytes().decode(encoding).splitlines()[:n]
    shown = [
        "    " + line[:HEAD_WIDTH] + (" ..." if len(line) > HEAD_WIDTH else "") for line in lines
    ]
    return "\n".join([f"--- {path.relative_to(root)}", *shown])


def relative_paths(frame: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """``frame`` with its image paths relative to the data folder ``root``, so a table
    shows no machine's folders."""
    return frame.assign(path=frame["path"].map(lambda p: Path(p).relative_to(root).as_posix()))


def pretraining_images(root: str | Path, synthetic: bool) -> pd.DataFrame | None:
    """SynthVeh's pretraining split (:func:`prreid_lib.pretrain.pretrain_frame`), or
    ``None`` for real data or a SynthVeh without one."""
    if not synthetic or not (Path(root) / "pretrain" / "image_list.txt").exists():
        return None
    from prreid_lib.pretrain import pretrain_frame

    return pretrain_frame(root)


def pretraining_summary(pre: pd.DataFrame) -> str:
    """The pretraining split in one sentence: images, vehicles and groups."""
    return (
        f"{len(pre)} images of {pre['vehicle'].nunique()} vehicles in "
        f"{pre['pid'].nunique()} make-model-colour groups"
    )
