/* executor/exec.c - executor operations common to every kind (dispatch on the kind). */
#include "executor/executor.h"
