"""Synthetic camera world (MuJoCo): scenes, datasets, bags."""
