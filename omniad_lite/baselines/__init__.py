"""Baselines on the same teacher features, data and metrics as Omni-AD.

- :mod:`.knn` — :class:`~.knn.PatchKNN`, nearest-neighbour scoring of patch features (PatchCore-style, Roth et
  al., CVPR 2022), :class:`~.knn.KnnConfig`
- :mod:`.coreset` — greedy k-center coreset subsampling in bounded memory
- :mod:`.fit` — :func:`~.fit.fit_knn` (a fitted model) and :func:`~.fit.train_knn` (a run directory, what
  ``omniad-lite train --method knn`` runs)

Nothing is imported here, so that :func:`omniad_lite.load_run` can import :mod:`.knn` without the fitting code.
"""
