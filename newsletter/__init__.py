"""newsletter: write, build and send the email newsletters of a news publisher.

Importing the package imports nothing heavy, so that `newsletter --help` starts fast.
"""

__version__ = "0.1.0"
