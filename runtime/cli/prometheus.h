/* SPDX-License-Identifier: Apache-2.0 */
/* The status records in Prometheus's text exposition format (0.0.4). */
#ifndef NIFKIT_PROMETHEUS_H
#define NIFKIT_PROMETHEUS_H

#include <stddef.h>
#include <stdio.h>

#include "nifkit.h"

/*
 * Writes every metric family, HELP and TYPE first, with one sample (or
 * one histogram) per record, labelled library and runtime_pid (and reason
 * for errors by reason). Families with no record still get HELP and TYPE.
 * 0, or -EIO when out fails.
 */
int nk_prometheus_write(FILE *out, const struct nk_status_record *recs, size_t n);

#endif
