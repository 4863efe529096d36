"""Small dense linear algebra: damped solves (:mod:`.damped`), curvature inverses for
covariances (:mod:`.curvature`), the host float64 view (:mod:`.host`) and batch-row
utilities (:mod:`.rows`)."""
