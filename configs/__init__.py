"""Experiment configs: each file's get_config() returns an ml_collections.ConfigDict with every value
it runs with; a variant imports its base and changes a few fields (flax examples/imagenet style)."""
