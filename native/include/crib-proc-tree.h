/* Killing a process together with every descendant it has (an exec whose time ran out). */
#ifndef CRIB_PROC_TREE_H
#define CRIB_PROC_TREE_H

#include <sys/types.h>

/* SIGKILL root and each process descending from it, stopped first so none forks meanwhile. */
void kill_tree(pid_t root);

#endif
