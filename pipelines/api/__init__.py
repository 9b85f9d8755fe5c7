"""The statistics API (issue 13): read-only, over the published marts."""
