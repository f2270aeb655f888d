"""Thin DVC stage scripts: parse params, call chanest, write the declared outputs."""
