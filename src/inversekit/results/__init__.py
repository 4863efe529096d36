"""The results layer: why a run stopped (:mod:`.status`), the result types
(:mod:`.fit_result`, :mod:`.batched`), their statistics (:mod:`.least_squares`,
:mod:`.uncertainty`), the parameters the data do not constrain (:mod:`.identifiability`),
the report (:mod:`.report`, :mod:`.rows`), tables rounded to the uncertainty
(:mod:`.table`, :mod:`.rounding`), saving and loading (:mod:`.io`) and figures
(:mod:`.plots`)."""

from inversekit.results.batched import BatchedFitResult
from inversekit.results.fit_result import FitResult
from inversekit.results.io import load
from inversekit.results.status import Status

__all__ = ["BatchedFitResult", "FitResult", "Status", "load"]
