"""``prreid search``: rank a gallery of one's own images for query images with a tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from prreid_lib import search
from prreid_lib.cli import main
from prreid_lib.extract import extract_folder
from prreid_lib.paths import canonical_paths
from prreid_lib.reranking import pairwise_distance
from prreid_lib.search import search_images, top_k_features
from prreid_lib.train import run_or_load
from prreid_lib.viz import search as viz_search
from tests.test_train import TINY, make_tiny_vehicleid

PER_ID = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A finished tiny run and the VehicleID image folder it was made from."""
    root = tmp_path_factory.mktemp("search")
    frame, boxes = make_tiny_vehicleid(root / "VehicleID", per_id=PER_ID)
    result = run_or_load(TINY, frame, boxes, root / "runs", progress=False, cache_dir=root / "c")
    return result.run_dir, root / "VehicleID" / "image"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _copy(images: Path, names: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(images / name, folder / name)
    return folder


def _name(index: int) -> str:
    return f"{index:07d}.jpg"


def _brute_force(q: np.ndarray, g: np.ndarray, metric: str, k: int):
    """The full float32 distance matrix (computed in float64), sorted stably."""
    dist = pairwise_distance(q.astype(np.float64), g.astype(np.float64), metric)
    dist = dist.astype(np.float32)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order, 1)


# ----------------------------------------------------------------- ranking: blocks, ties, k


def test_blocked_search_equals_full_matrix_ranking(tiny, tmp_path):
    run, images = tiny
    names = [_name(0), _name(9), _name(30)]
    queries = _copy(images, names, tmp_path / "q")
    g_feats, g_paths = extract_folder(run, images, "cpu", batch_size=6, progress=False)
    q_feats, _ = extract_folder(run, queries, "cpu", batch_size=6, progress=False)
    g_paths = canonical_paths(g_paths)
    assert len(g_paths) == 36
    for metric in ("cosine", "euclidean"):
        table = search_images(
            run, queries, images, top_k=12, metric=metric, device="cpu", batch_size=6, block=6
        )  # the batches above, in 6 blocks of 6 gallery images
        order, dist = _brute_force(q_feats, g_feats, metric, 12)
        for i, (query, rows) in enumerate(table.groupby("query", sort=False)):
            assert Path(query).name == names[i]
            assert rows["rank"].tolist() == list(range(1, 13))
            assert rows["gallery"].tolist() == [g_paths[j] for j in order[i]], metric
            np.testing.assert_allclose(rows["distance"], dist[i], rtol=1e-5, atol=1e-6)
        assert list(table.columns) == ["query", "rank", "gallery", "distance"]


def test_blocking_keeps_ties_in_gallery_order():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 4)).astype(np.float32)
    gallery = np.concatenate([base, base, base[::-1]])  # every row three times
    query = base[[0, 3]] + 0.01
    for metric in ("cosine", "euclidean"):
        full_idx, full_d = _brute_force(query, gallery, metric, 15)
        for block in (1, 2, 4, 7, 15, 100):
            idx, dist = top_k_features(query, gallery, 15, metric, block=block)
            assert np.array_equal(idx, full_idx), (metric, block)
            np.testing.assert_allclose(dist, full_d, rtol=1e-6, atol=1e-6)
    idx, dist = top_k_features(query, gallery, 1000, "cosine", block=4)
    assert idx.shape == (2, 15)  # top-k clipped to the gallery


def test_cosine_ranks_by_angle_and_euclidean_by_position():
    query = np.array([[1.0, 0.0]], np.float32)
    gallery = np.array([[10.0, 1.0], [0.6, 0.6]], np.float32)  # far but aligned; near, 45 deg
    idx, dist = top_k_features(query, gallery, 2, "cosine")
    assert idx.tolist() == [[0, 1]]
    np.testing.assert_allclose(dist[0], [1 - 10 / np.sqrt(101), 1 - np.sqrt(0.5)], rtol=1e-5)
    idx, dist = top_k_features(query, gallery, 2, "euclidean")
    assert idx.tolist() == [[1, 0]]
    np.testing.assert_allclose(dist[0], [np.sqrt(0.52), np.sqrt(82)], rtol=1e-5)


def test_top_k_clipped_to_a_small_gallery_and_the_query_itself_left_out(tiny, tmp_path):
    run, images = tiny
    gallery = _copy(images, [_name(0), _name(1), _name(5)], tmp_path / "g")
    table = search_images(run, gallery / _name(0), gallery, top_k=10, device="cpu")
    assert table["rank"].tolist() == [1, 2]  # three images, the query itself left out
    assert not (table["gallery"] == table["query"]).any()
    assert set(map(lambda p: Path(p).name, table["gallery"])) == {_name(1), _name(5)}
    with pytest.raises(ValueError, match="no image other than the query"):
        search_images(run, gallery / _name(0), gallery / _name(0), device="cpu")


def test_gallery_is_decoded_in_blocks(tiny, tmp_path, monkeypatch):
    """Bounded memory: the model never sees more than ``block`` gallery images at once."""
    from prreid_lib import extract

    run, images = tiny
    seen: list[int] = []
    real = extract.iter_features

    def spy(model, paths, *args, **kwargs):
        seen.append(len(paths))
        return real(model, paths, *args, **kwargs)

    monkeypatch.setattr(extract, "iter_features", spy)
    gallery = _copy(images, [_name(i) for i in range(15)], tmp_path / "g")
    query = gallery / _name(0)
    blocked = search_images(run, query, gallery, 20, device="cpu", batch_size=7, block=7)
    assert seen == [1, 7, 7, 1]  # the query, then 15 gallery images by 7
    whole = search_images(run, query, gallery, 20, device="cpu", batch_size=7)
    assert seen[4:] == [1, 15] and len(whole) == 14  # the query itself left out
    pd.testing.assert_frame_equal(blocked, whole)


def test_rerank_equals_full_reranked_ranking(tiny, tmp_path):
    from prreid_lib.metrics import reranked_distance

    run, images = tiny
    queries = _copy(images, [_name(2), _name(17)], tmp_path / "q")
    gallery = _copy(images, [_name(i) for i in range(0, 36, 3)], tmp_path / "g")
    table = search_images(run, queries, gallery, 5, rerank={"k1": 6, "k2": 3}, device="cpu")
    q, _ = extract_folder(run, queries, "cpu", progress=False)
    g, g_paths = extract_folder(run, gallery, "cpu", progress=False)
    g_paths = canonical_paths(g_paths)
    dist = reranked_distance(q, g, "cosine", k1=6, k2=3)
    order = np.argsort(dist, axis=1, kind="stable")[:, :5]
    assert table["gallery"].tolist() == [g_paths[j] for j in order.ravel()]
    np.testing.assert_allclose(table["distance"], np.take_along_axis(dist, order, 1).ravel())
    plain = np.sort(pairwise_distance(q, g, "cosine"), axis=1)[:, :5]
    assert not np.allclose(plain.ravel(), table["distance"])  # re-ranked, not plain cosine


# ----------------------------------------------------------------- identities and the figure


def _identities(tmp_path: Path, images: Path) -> tuple[Path, Path, Path]:
    """Query: one image of vehicle 10; gallery: 3 more of it, 4 of vehicle 11, one unlisted."""
    query = _copy(images, [_name(0)], tmp_path / "query")
    gallery = _copy(images, [_name(i) for i in range(1, 9)], tmp_path / "gallery")
    rows = [f"query/{_name(0)},10"]
    rows += [f"gallery/{_name(i)},{10 + i // PER_ID}" for i in range(1, 8)]  # 8 is unlisted
    csv = tmp_path / "ids.csv"
    csv.write_text("path,pid\n" + "\n".join(rows) + "\n")
    return query, gallery, csv


def test_identities_colour_the_frames(tiny, tmp_path):
    run, images = tiny
    query, gallery, csv = _identities(tmp_path, images)
    table = search_images(run, query, gallery, 8, device="cpu", identities=csv)
    expected = {_name(i): (i // PER_ID == 0) for i in range(1, 8)}
    got = {Path(g).name: m for g, m in zip(table["gallery"], table["match"], strict=True)}
    assert {k: v for k, v in got.items() if k != _name(8)} == expected
    assert pd.isna(got[_name(8)])
    fig = viz_search.search_figure(table)
    axes = fig.axes
    frame = lambda ax: to_hex(ax.spines["top"].get_edgecolor())  # noqa: E731
    assert frame(axes[0]) == viz_search.QUERY_COLOUR
    for ax, match in zip(axes[1:], table["match"], strict=True):
        want = viz_search.UNKNOWN_COLOUR if pd.isna(match) else (
            viz_search.MATCH_COLOUR if match else viz_search.OTHER_COLOUR
        )  # fmt: skip
        assert frame(ax) == want
    colours = [frame(ax) for ax in axes[1:]]
    assert colours.count(viz_search.MATCH_COLOUR) == 3
    assert colours.count(viz_search.OTHER_COLOUR) == 4
    plain = viz_search.search_figure(table.drop(columns="match"))
    assert {frame(ax) for ax in plain.axes[1:]} == {viz_search.UNKNOWN_COLOUR}


def test_figure_draws_the_first_queries_and_ranks_and_says_so(tmp_path):
    paths = []
    for k in range(5):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.new("RGB", (30, 20), (40 * k, 0, 0)).save(paths[-1])
    table = pd.DataFrame(
        [(q, r + 1, paths[r + 1], 0.1 * r) for q in paths[:3] for r in range(4)],
        columns=["query", "rank", "gallery", "distance"],
    )
    fig = viz_search.search_figure(table, max_queries=2, max_ranks=3)
    assert len(fig.axes) == 2 * 4
    assert fig.axes[5].get_title() == "1: 0" and fig.axes[7].get_title() == "3: 0.2"
    assert "first 2 of 3 queries, top 3 of 4 ranks" in fig._suptitle.get_text()
    whole = viz_search.search_figure(table)
    assert len(whole.axes) == 3 * 5 and whole._suptitle is None
    assert (viz_search.MAX_QUERIES, viz_search.MAX_RANKS) == (8, 10)
    with pytest.raises(ValueError, match="columns query, rank, gallery, distance"):
        viz_search.search_figure(table.drop(columns="distance"))


# ------------------------------------------------------------------------ the command line


def test_cli_writes_csv_and_png_from_relative_paths(tiny, tmp_path, monkeypatch, capsys):
    run, images = tiny
    query, gallery, _ = _identities(tmp_path, images)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "gallery.txt").write_text(
        "path\n# my gallery\n\n" + "".join(f"../gallery/{_name(i)}\n" for i in range(1, 9))
    )
    monkeypatch.chdir(tmp_path / "lists")
    code = main(["search", "--run", str(run), "--query", "../query", "--gallery", "gallery.txt",
                 "--identities", "../ids.csv", "--top-k", "3", "--out", "../out/res",
                 "--device", "cpu", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    table = pd.read_csv(tmp_path / "out" / "res.csv")
    assert list(table.columns) == ["query", "rank", "gallery", "distance", "match"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["query"].tolist() == [str((tmp_path / "query" / _name(0)).resolve())] * 3
    assert Image.open(tmp_path / "out" / "res.png").size[0] > 100
    assert "written to" in captured.out and "1 of 9 images have no identity" in captured.err
    code = main(["search", "--run", str(run), "--query", "../query", "--gallery", "../gallery",
                 "--out", "../out/", "--metric", "euclidean", "--no-progress"])  # fmt: skip
    assert code == 0
    assert (tmp_path / "out" / "search.csv").is_file()
    assert (tmp_path / "out" / "search.png").is_file()
    assert len(pd.read_csv(tmp_path / "out" / "search.csv")) == 8


def _exit_code(argv: list[str]) -> int:
    """The status of ``prreid ARGV``; argparse's own errors exit through ``SystemExit``."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


BAD_OPTIONS = {
    "top-k 0": (["--top-k", "0"], "--top-k 0"),
    "top-k 1001": (["--top-k", "1001"], "--top-k 1001"),
    "metric": (["--metric", "l1"], "--metric"),
    "k1 alone": (["--k1", "5"], "--k1 5: applies only with --rerank"),
    "batch": (["--batch-size", "0"], "--batch-size 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS) + ["no run", "no query", "empty gallery",
    "bad list", "identities column", "identities none", "out in gallery", "out is the list",
    "rerank bound", "bad image", "identities conflict", "not a list"])  # fmt: skip
def test_cli_refuses_bad_options_in_one_line(tiny, tmp_path, capsys, monkeypatch, case):
    run, images = tiny
    query, gallery, ids = _identities(tmp_path, images)
    extra: list[str] = []
    out = tmp_path / "res"
    culprit = ""
    if case in BAD_OPTIONS:
        extra, culprit = BAD_OPTIONS[case]
    elif case == "no run":
        run = tmp_path / "gallery"
        culprit = f"--run {run}: not a finished run folder"
    elif case == "no query":
        query = tmp_path / "nowhere"
        culprit = f"--query {query}: not found"
    elif case == "empty gallery":
        gallery = tmp_path / "empty"
        gallery.mkdir()
        culprit = f"no images (jpg, jpeg, png, bmp) under {gallery}"
    elif case == "bad list":
        gallery = tmp_path / "g.txt"
        gallery.write_text(f"gallery/{_name(1)}\ngallery/missing.jpg\n")
        culprit = f"{gallery}, line 2: expected the path of an image file"
    elif case == "identities column":
        ids.write_text("file,id\nquery/x.jpg,1\n")
        extra, culprit = ["--identities", str(ids)], f"{ids}, line 1: expected a header"
    elif case == "identities none":
        ids.write_text("path,pid\nelsewhere/x.jpg,1\n")
        extra, culprit = ["--identities", str(ids)], f"{ids}: expected the paths of the searched"
    elif case == "out in gallery":
        out = gallery / "results"
        culprit = "would land in the --gallery folder"
    elif case == "out is the list":
        gallery = tmp_path / "g.csv"
        gallery.write_text(f"gallery/{_name(1)}\n")
        out = gallery
        culprit = "is a file prreid reads back"
    elif case == "bad image":
        (gallery / "cut.jpg").write_bytes(b"\xff\xd8 not a jpeg at all")
        culprit = f"{gallery / 'cut.jpg'}: expected an image file"
    elif case == "identities conflict":
        ids.write_text(f"path,pid\nquery/{_name(0)},10\n\n./query/{_name(0)},11\n")
        extra, culprit = ["--identities", str(ids)], f"{ids}, line 4: expected one identity"
    elif case == "not a list":
        query = tmp_path / "car.gif"
        query.write_bytes(b"GIF89a\xff\xfe\x00\x80")
        culprit = f"{query}: expected an image (jpg, jpeg, png, bmp), a folder or a UTF-8"
    else:
        monkeypatch.setattr(search, "MAX_RERANK_IMAGES", 5)
        extra, culprit = ["--rerank"], "--rerank: 1 query + 8 gallery images"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = _exit_code(["search", "--run", str(run), "--query", str(query), "--gallery",
                       str(gallery), "--out", str(out), "--no-progress", *extra])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("prreid search: error: ") and culprit in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_cli_interrupt_says_what_was_kept(tiny, tmp_path, capsys, monkeypatch):
    import prreid_lib.cache

    run, images = tiny
    base = ["search", "--run", str(run), "--query", str(images / _name(0)),
            "--gallery", str(images), "--out", str(tmp_path / "res"), "--no-progress"]  # fmt: skip

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    real = search.search_images
    monkeypatch.setattr(search, "search_images", stop)
    assert main(base) == 130
    err = capsys.readouterr().err.strip()
    assert err == "prreid search: interrupted: nothing was written; run the same command again"
    monkeypatch.setattr(search, "search_images", real)
    monkeypatch.setattr(prreid_lib.cache, "atomic_write_text", stop)
    assert main(base) == 130
    err = capsys.readouterr().err.strip()
    assert f"{tmp_path / 'res.png'} was written, not its CSV" in err
    assert not (tmp_path / "res.csv").exists() and len(err.splitlines()) == 1


def test_cli_help_says_what_it_writes_and_the_metric(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exc.value.code == 0
    assert "OUT.csv" in out and "OUT.png" in out and "FOLDER/search.csv" in out
    metric = out[out.index("--metric {cosine,euclidean}") :]
    assert "cosine: the common practice" in metric and "(default: cosine)" in metric
    assert "euclidean: the paper's L2 distance" in metric
