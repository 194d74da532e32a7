"""The study file: its YAML (`yamlfile`), the value rules (`schema`) and the frozen study (`spec`). No Keras."""
