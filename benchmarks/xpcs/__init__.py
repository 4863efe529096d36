"""The ``xpcs-kernel`` benchmark: the XPCS two-time c2 kernel alone, no optimizer.

``bench`` defines the case, the sides (inversekit's torch kernel, homodyne's JAX kernel),
the quality gate and the table; ``child`` times one side in a child process and writes its
c2 and Jacobian samples to an ``.npz`` file that the gate compares across sides.
"""
