"""The synthetic Denmark and its simulated source systems.

Depends on contracts and reference data only, never on the pipeline: the
simulator plays the reporters (jobcentres, a-kasser, Jobnet, UVM, SSI), the
servers play their channels.
"""
