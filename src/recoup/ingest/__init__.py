"""File import (CSV, XLSX, JSON Lines) with row-level validation, and the data-quality report."""
