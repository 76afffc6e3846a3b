"""Not a digit, in one place: what a model learns to refuse, how it says so, and how that is measured.

  not_digits.py   the training bank (letters, scribbles, shapes, objects, paper, noise, digit pairs), each step's
                  draw from it, and its loss term: outlier exposure, a flat answer to what is not a digit
  decision.py     calibration (temperature) and the not-a-digit threshold, fitted on validation digits; the
                  digit_score and is_digit outputs every export serves
  ood.py          the sets `scripts/evaluate.py --ood` measures on (Fashion-MNIST, held-out fonts, noise, ...)
  handwriting.py  MNIST digits photographed: digits that must still be accepted
  detection.py    the measurement: AUROC, false positives at 95% acceptance, the share accepted, per set

It plugs into a run through the seams of the rest: the bank and its loss term through `training/extras.py`, the
decision through `run.py` (fitted after training) and the export's signatures (`export/saved_model.py`).
"""
