*** Comments ***
Runs the self-test and streaming UART images of firmware/boards.mk on Renode's model of the board
(firmware/renode/mps2-an386.repl) and waits for their console lines. Build the images first:
    make -C firmware uart-selftest BOARD=mps2-an386 MODEL=m.tflite VECTORS=v.sktv
    make -C firmware uart-stream BOARD=mps2-an386 MODEL=m.tflite AUDIO=a.wav OUT=firmware/build/mps2-an386/uart-stream
then: renode-test firmware/renode/mps2-an386.robot
Not run in CI: Renode is not obtainable here (CI runs the same images on QEMU, tests/test_boards.py).

*** Variables ***
${SELFTEST_ELF}    @${CURDIR}/../build/mps2-an386/uart/kws_selftest.elf
${STREAM_ELF}      @${CURDIR}/../build/mps2-an386/uart-stream/kws_stream.elf

*** Keywords ***
Create Board
    [Arguments]    ${elf}
    Execute Command    mach create
    Execute Command    machine LoadPlatformDescription @${CURDIR}/mps2-an386.repl
    Execute Command    sysbus LoadELF ${elf}
    Create Terminal Tester    sysbus.uart0    timeout=120

*** Test Cases ***
Self Test Should Pass
    Create Board    ${SELFTEST_ELF}
    Start Emulation
    Wait For Line On Uart    SELFTEST board=mps2-an386 .*    treatAsRegex=true
    Wait For Line On Uart    PASS \\d+/\\d+    treatAsRegex=true
    Wait For Line On Uart    EXIT 0

Stream Should Finish
    Create Board    ${STREAM_ELF}
    Start Emulation
    Wait For Line On Uart    STREAM status=0 .*    treatAsRegex=true
    Wait For Line On Uart    EXIT 0
