"""dsdw: statistical data warehouse and ETL pipeline for the Danish employment area (BEK 912/2015)."""

__version__ = "0.1.0"
