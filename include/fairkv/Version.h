//===- Version.h - FairKV's version, one definition for every tool -*- C++ -*-===//

#ifndef FAIRKV_VERSION_H
#define FAIRKV_VERSION_H

/// Every tool's --version and the runtime's fairkv_rt_version().
#define FAIRKV_VERSION "0.1.0"

#endif // FAIRKV_VERSION_H
