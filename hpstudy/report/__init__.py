"""Reports of studies: tables and pages in markdown, CSV, JSON, HTML and LaTeX. No Keras."""
