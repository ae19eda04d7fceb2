"""The agreement as data: loading and validating knowledge/ into frozen items."""
