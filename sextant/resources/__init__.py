"""Katib resources: typed models, loading (v1beta1, v1alpha3), defaults and validation."""

from sextant.resources.admission import admit_experiment, validate_file
from sextant.resources.loading import load_document, load_documents
from sextant.resources.models import Experiment, Suggestion, Trial, to_doc

__all__ = ["Experiment", "Suggestion", "Trial", "admit_experiment", "load_document", "load_documents",
           "to_doc", "validate_file"]
