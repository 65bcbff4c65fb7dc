"""What the plugin registers with nerfstudio: methods (:mod:`method_configs`) and DataParsers (:mod:`dataparser_configs`)."""
