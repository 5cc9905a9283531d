# Only wires the cffi build; all metadata lives in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["csrc/ffibuild.py:ffibuilder"])
