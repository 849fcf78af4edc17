/* OCI hooks: each {path, args, env, timeout} runs with the container's state JSON on stdin.
 *   prestart, createRuntime  runtime namespace, after the container's namespaces exist,
 *                            before pivot_root (run by `create`, the parent)
 *   createContainer          container namespaces, before pivot_root (run by the init)
 *   startContainer           container, after `start`, before the program runs (by the init)
 *   poststart                runtime namespace, after `start` (failures only warn)
 *   poststop                 runtime namespace, after `delete` (failures only warn) */
#ifndef CRIB_HOOKS_H
#define CRIB_HOOKS_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

bool crib_hooks_has(json_t *spec, const char *stage);

/* Run every hook of the stage in order; the first failing (non-zero exit, signal, timeout,
 * missing binary) stops the stage with an error naming it. */
int crib_hooks_run(json_t *spec, const char *stage, json_t *state, crib_err *err);

#endif
