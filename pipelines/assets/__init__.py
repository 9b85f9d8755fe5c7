"""Dagster assets, jobs, schedules and sensors (thin wrappers over the plain functions)."""
