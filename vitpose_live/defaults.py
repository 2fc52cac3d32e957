"""Default checkpoints and named choices: plain constants, cheap to import (no torch), so the
command line can check its arguments before any model code loads."""

DEFAULT_POSE_MODEL = "usyd-community/vitpose-base-simple"
DEFAULT_DETECTOR = "PekingU/rtdetr_r50vd_coco_o365"

# ViTPose++ mixture-of-experts heads, in the order the checkpoints were trained with.
EXPERTS: dict[str, int] = {"coco": 0, "aic": 1, "mpii": 2, "ap10k": 3, "apt36k": 4, "wholebody": 5}
