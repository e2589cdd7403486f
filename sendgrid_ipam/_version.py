"""The version of sendgrid-ipam."""

__version__ = "0.1.0"
