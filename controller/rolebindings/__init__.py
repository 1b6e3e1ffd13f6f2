"""Default registry rights: the pullers' and builders' RoleBindings in every managed namespace."""
