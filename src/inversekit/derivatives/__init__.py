"""The derivative layer: Jacobian engines and their choice.

Each engine gives the normal equations ``(JᵀWJ, JᵀWr, cost)`` of a least-squares problem
chunk by chunk, its full Jacobian and the geodesic right-hand side: forward-mode AD
(:mod:`.forward`), a ``torch.compile``'d fused kernel (:mod:`.compiled`), the complex step
(:mod:`.complex_step`) and the batched problems' broadcast form (:mod:`.broadcast`).
:mod:`.choice` picks one for ``jacobian="auto"`` and records why.
"""
