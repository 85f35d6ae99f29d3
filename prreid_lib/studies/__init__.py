"""The experiments the chapters share: their data, the model's variants, near-duplicates.

Chapters 4-8 train many variants of the same model (baseline, part-regularized,
the ablation rows of Table 4, other input sizes) on the same data. This
package gives them one way to do it, in three modules:

- :mod:`prreid_lib.studies.data`: the data folder, the part labels and
  :func:`~prreid_lib.studies.data.load_study_data`, which gathers what a
  chapter trains and tests on (:class:`~prreid_lib.studies.data.StudyData`);
- :mod:`prreid_lib.studies.variants`: the variants by key (the rows of Table 4,
  :class:`~prreid_lib.paper_tables.Variant`), trained once, evaluated and
  compared over seeds;
- :mod:`prreid_lib.studies.near_duplicates`: pairs of near-duplicate
  identities and the make-model-colour floor.

Each chapter's own steps live in modules of their own, which the chapter
imports directly: :mod:`~prreid_lib.studies.dataset_tour` (chapter 1),
:mod:`~prreid_lib.studies.part_labels` (2), :mod:`~prreid_lib.studies.detection`
(3), :mod:`~prreid_lib.studies.comparison` (4), :mod:`~prreid_lib.studies.evaluation`,
:mod:`~prreid_lib.studies.veri_evaluation` and :mod:`~prreid_lib.studies.rank_lists`
(5), :mod:`~prreid_lib.studies.ablation` (6), :mod:`~prreid_lib.studies.resolution`,
:mod:`~prreid_lib.studies.cue_study`, :mod:`~prreid_lib.studies.baseline_strength`,
:mod:`~prreid_lib.studies.locality` and :mod:`~prreid_lib.studies.regime_map` (7),
:mod:`~prreid_lib.studies.cam` (8) and :mod:`~prreid_lib.studies.appendix`.

The chapters import the shared names from here, including the library's pieces they use
directly: :func:`~prreid_lib.results.save_table` and the verdicts of
:mod:`prreid_lib.uncertainty`. A chapter explains and calls; the
logic lives in the library: beside these modules, the detected part boxes of
chapter 3 (:mod:`prreid_lib.detector`), the VeRi-776 junk rule
(:mod:`prreid_lib.datasets.veri776`), the VeRi-776 table figures
(:mod:`prreid_lib.evaluate`) and SynthVeh's file names
(:mod:`prreid_lib.synthveh_files`).
"""

from __future__ import annotations

from prreid_lib.config import PART_NAMES
from prreid_lib.datasets.veri776 import same_camera_junk
from prreid_lib.detector import detected_boxes_path, load_detected_boxes, save_detected_boxes
from prreid_lib.evaluate import veri_figures
from prreid_lib.paper_tables import LABELS, PAPER_LABEL, Variant
from prreid_lib.results import save_table
from prreid_lib.studies.data import (
    MIN_DETECTED_COVERAGE,
    PART_SOURCES,
    REAL_TEST_SIZES,
    TEST_SET_NAMES,
    StudyData,
    chosen_test_set,
    load_data_sets,
    load_study_data,
    parts_spec,
    resolve_data_root,
    resolve_parts_yaml,
    synthveh_variant,
    table_labels,
)
from prreid_lib.studies.near_duplicates import (
    floor_verdict,
    group_oracle,
    identity_groups,
    near_duplicate_images,
    near_duplicate_pairs,
    sample_pairs,
)
from prreid_lib.studies.variants import (
    ABLATION_VARIANTS,
    ALL_PARTS,
    BASELINE,
    EVALUATION_KEY_VERSION,
    FULL,
    HEADLINE_PAIR,
    NO_PARTS,
    compare_over_seeds,
    compare_variants,
    evaluate_variant,
    evaluation_key,
    headline_seeds,
    part_gain,
    run_name,
    seed_summary,
    slug,
    train_variant,
    train_variants,
    variant_config,
)
from prreid_lib.synthveh_files import is_synthveh
from prreid_lib.uncertainty import (
    MARGIN_SE,
    bootstrap_mean,
    bootstrap_paired_difference,
    difference_from_value,
    ordering_against,
    pair_verdict,
    paired_difference,
    seed_difference,
    seed_spread,
)

__all__ = [
    "PART_NAMES",
    "PAPER_LABEL",
    "save_table",
    "MARGIN_SE",
    "bootstrap_mean",
    "bootstrap_paired_difference",
    "difference_from_value",
    "ordering_against",
    "pair_verdict",
    "paired_difference",
    "seed_difference",
    "seed_spread",
    "ABLATION_VARIANTS",
    "ALL_PARTS",
    "BASELINE",
    "EVALUATION_KEY_VERSION",
    "FULL",
    "HEADLINE_PAIR",
    "LABELS",
    "MIN_DETECTED_COVERAGE",
    "NO_PARTS",
    "PART_SOURCES",
    "REAL_TEST_SIZES",
    "TEST_SET_NAMES",
    "StudyData",
    "Variant",
    "chosen_test_set",
    "compare_over_seeds",
    "compare_variants",
    "detected_boxes_path",
    "evaluate_variant",
    "evaluation_key",
    "floor_verdict",
    "group_oracle",
    "headline_seeds",
    "identity_groups",
    "is_synthveh",
    "load_data_sets",
    "load_detected_boxes",
    "load_study_data",
    "near_duplicate_images",
    "near_duplicate_pairs",
    "part_gain",
    "parts_spec",
    "resolve_data_root",
    "resolve_parts_yaml",
    "run_name",
    "same_camera_junk",
    "sample_pairs",
    "save_detected_boxes",
    "seed_summary",
    "slug",
    "synthveh_variant",
    "table_labels",
    "train_variant",
    "train_variants",
    "variant_config",
    "veri_figures",
]
