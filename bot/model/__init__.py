"""The embedding model: loading it at start-up; building it (conversion) at set-up."""
