//! MSK data sources (not written yet).
