"""movierec."""
