"""The ``large-lsq`` benchmark: three Gaussians on a linear background, 11 parameters, any N.

``problem`` defines the model, its Jacobian, the truth, the start and the data files;
``child`` fits them in a child process (inversekit or scipy); ``bench`` defines the sides,
the quality gate and the table.
"""
