// Baked variant: the weights are literals in the generated MLP functions; nothing to load per workgroup.
void variant_prologue() {}
