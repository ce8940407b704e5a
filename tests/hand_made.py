"""The hand-made multi-exit example shared by several test files (imported, not collected).

N = 4 samples, E = 3 exits, K = 2 classes, built from three kinds of rows with known
normalised entropy, so sweeps, budgets and explorer states can be computed by hand.
At tau = 0, 0.5, 0.9, 1 the entropy rule gives accuracy 0.5, 0.5, 1.0, 0.5 and mean
cost 1.1, 0.775, 0.575, 0.3.
"""

import math

import numpy as np

SURE_0, SURE_1 = [20.0, 0.0], [0.0, 20.0]  # entropy ~ 6e-8, predicts 0 / 1
UNIFORM = [0.0, 0.0]  # entropy 1, argmax 0
THREE_QUARTERS_1 = [0.0, math.log(3)]  # p = (1/4, 3/4): entropy H(0.25) / log 2 = 0.811, predicts 1
THREE_QUARTERS_0 = [math.log(3), 0.0]  # p = (3/4, 1/4): entropy 0.811, predicts 0
H_MID = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)

LOGITS = np.array(
    [
        # exit_1            exit_2            final
        [SURE_0, SURE_1, SURE_1],  # sample 0, label 0
        [UNIFORM, THREE_QUARTERS_1, SURE_0],  # sample 1, label 1
        [UNIFORM, UNIFORM, SURE_1],  # sample 2, label 1
        [THREE_QUARTERS_0, SURE_1, SURE_0],  # sample 3, label 0
    ],
    dtype=np.float32,
)
LABELS = np.array([0, 1, 1, 0])
COSTS = np.array([0.3, 0.6, 1.1])
