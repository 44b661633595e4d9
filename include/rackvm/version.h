/* SPDX-License-Identifier: MIT */
/*
 * rackvm's version: what `rackvm --version` prints, the API reports and
 * a snapshot or migration stream names as its producer.
 */
#ifndef RACKVM_VERSION_H
#define RACKVM_VERSION_H

#define RACKVM_VERSION "0.1.0"

#endif
