"""The package version (recorded in every run manifest)."""

VERSION = "0.1.0"
