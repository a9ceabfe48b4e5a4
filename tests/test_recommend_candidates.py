"""The candidate features' lookup (``recommend.candidates._gather``) gives what scipy's element-wise indexing
gives: the stored value where the matrix has one, 0 where it has none, whichever order its indices are in."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommend.candidates import _gather


def test_gather_matches_scipy_indexing_on_hits_misses_and_unsorted_indices():
    rng = np.random.default_rng(3)
    m = sparse.random(40, 300, density=0.05, format="csr", random_state=4, dtype=np.float32)
    m.data += 0.5  # no stored zeros: a miss and a hit differ
    shuffled = m.copy()
    for row in range(shuffled.shape[0]):  # the same matrix with each row's indices out of order
        lo, hi = shuffled.indptr[row], shuffled.indptr[row + 1]
        order = lo + rng.permutation(hi - lo)
        shuffled.indices[lo:hi], shuffled.data[lo:hi] = shuffled.indices[order], shuffled.data[order]
    shuffled.has_sorted_indices = False
    hits = m.tocoo()
    misses = rng.integers(0, 40 * 300, 500)
    keys = np.unique(np.concatenate([hits.row.astype(np.int64) * 300 + hits.col, misses]))
    r, c = keys // 300, keys % 300
    expected = np.asarray(m[r, c], dtype=np.float64).ravel()
    assert (expected > 0).sum() == m.nnz and (expected == 0).any()
    for matrix in (m, shuffled):
        assert np.array_equal(_gather(matrix, keys, 300), expected)
    assert np.array_equal(_gather(sparse.csr_matrix((40, 300), dtype=np.float32), keys, 300), np.zeros(len(keys)))
