"""Finding the right part of the agreement: tokens, references, the index, retrieval, abstention."""
