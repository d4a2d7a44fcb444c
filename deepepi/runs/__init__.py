"""A run directory as a thing other layers can name: ``layout`` (file names, the run log, the threshold
record), ``resolve`` (a directory or model file -> its config, framework and native model; twins built
from neutral weights) and ``reference_import`` (a reference-trained model -> a new run directory)."""
