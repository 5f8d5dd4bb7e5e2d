// Importing a handler file registers it; the catalog refers to handlers by id.
