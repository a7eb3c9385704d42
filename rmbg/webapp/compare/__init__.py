"""The Compare feature: several providers on one image (the decisions, `comparing`) and its tab."""
