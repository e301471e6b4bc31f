#include "ledger/state_machine.hpp"
// (being written)
