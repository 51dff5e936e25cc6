#include <gtest/gtest.h>
TEST(Placeholder, Fails) { FAIL() << "not written yet"; }
