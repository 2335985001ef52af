"""Spectral Atlas dashboard: the console script now, the Panel app with step 3.

Everything here sits on top of :mod:`data_access`; nothing in ``data_access``
imports from this package.
"""
