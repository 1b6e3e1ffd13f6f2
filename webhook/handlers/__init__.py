"""Admission handlers: adapters from an AdmissionRequest to the pure cores' decisions."""
