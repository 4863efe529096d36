"""The NIST StRD nonlinear-regression benchmark: certified values, both starts, every file.

``data`` parses the ``.dat`` files and scores results (log relative error), ``models`` holds
the 19 models written once against an array namespace with hand-written Jacobians, ``child``
fits them in a child process (inversekit, scipy, lmfit) and ``bench`` defines the sides, the
quality gate and the tables.
"""
