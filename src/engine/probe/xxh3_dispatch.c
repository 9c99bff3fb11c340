/*
 * xxh3_dispatch.c - a build-time probe, never part of the engine: it links
 * only if libxxhash has XXH3's run-time dispatched entry (x86-64 builds of
 * the library do; a library built without its dispatcher may still ship
 * the header).  src/engine/sources.mk compiles it to decide
 * KVS_HAVE_XXH3_DISPATCH, which pager.c's page checksum reads.
 */
#include <xxh_x86dispatch.h>

int main(void)
{
    return (int) XXH3_64bits_withSeed_dispatch("", 0, 0);
}
